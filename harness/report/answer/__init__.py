"""Views of the build-or-buy answer."""
