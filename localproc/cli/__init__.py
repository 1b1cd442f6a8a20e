"""The command-line front door: one typer app, its commands, and how results are printed."""
