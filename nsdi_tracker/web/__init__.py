"""The web page's floor: words in two languages, plots, evidence in words, the Atom feed and
the templates. Pure: rows in, HTML, SVG or XML out; the status server serves it."""
