"""The static leaderboard: ``aggregate`` (results -> tidy tables), ``figures`` (plotly specs), ``site`` (HTML)."""
