"""Domain actions: the only code that writes, and the only code that publishes, after commit.

`check_*` functions (in `server.rules`) decide, `do_*`-style actions here write then announce.
"""
