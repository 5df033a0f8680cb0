"""The four processors, one thin file each: what they read, what they write,
wired from the shell and the core.
"""
