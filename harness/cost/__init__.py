"""Cost model: hosting cost per hour and cost per million tokens."""
