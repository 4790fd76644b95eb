"""Reference solutions: steady states, dynamic programming, equilibria (the answers learning is measured against)."""
