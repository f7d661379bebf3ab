"""Domain rules as plain functions: data in, data out, no database and no HTTP."""
