"""`harness compare`: runs side by side."""
