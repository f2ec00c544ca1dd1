"""The command line, `rnnlab` (cli.main:main): the top of the import graph; it may import every package."""
