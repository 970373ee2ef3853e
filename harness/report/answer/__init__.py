"""Views of the build-or-buy answer: the documents of `harness cost` and `harness prices`
(document.py, listing_documents.py), their tables written once (grid.py, tables.py,
listings.py), the terminal lines (terminal.py), and the run page's section (view.py, html.py)."""
