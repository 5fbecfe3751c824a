"""The command-line tools, importable: scripts/<name>.py and the flaxzoo-<name> console scripts run these.

Each module has `main(argv) -> exit code`; `flaxzoo.cli.run(main)` turns user errors into one line.
"""
