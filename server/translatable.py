"""`N_` marks a string for translation where it is defined; it is translated where it is shown."""


def N_(message: str) -> str:
    return message
