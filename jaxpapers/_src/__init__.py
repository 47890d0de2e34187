"""Private helpers shared by every paper package (never import another paper's package)."""
