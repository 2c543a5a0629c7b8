"""The `vsmmon` command. `main.main` is the entry point (argument parser and dispatch); one module per
command family: `agents` (`simulate`, `agent watch`), `alerts` (`alerts`, `actions`, `decisions`), `check`.
"""
