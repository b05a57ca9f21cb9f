"""Test-only plugins: registered per test (try/finally pm.unregister), never installed."""
