"""The `harness` commands, one module each: parse the arguments, call one function below,
print. harness/cli.py puts them on the command line."""
