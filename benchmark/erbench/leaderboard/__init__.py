"""The static leaderboard: ``aggregate`` (results -> tidy rows), ``figures`` (plotly specs), ``site`` (HTML);
``synthetic`` writes full-battery results for the tests and the build benchmark."""
