"""What the user asked for: the TOML config and the watchlists, validated into frozen specs
before any query is sent. Every error names the file and the key.
"""
