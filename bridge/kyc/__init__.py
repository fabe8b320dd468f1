"""Pure KYC rules: states, tags, link tokens, email keys, timestamps. Standard library only."""
