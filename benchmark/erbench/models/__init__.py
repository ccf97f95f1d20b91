"""Split models: head -> entropy model (real range coding) -> tail."""
