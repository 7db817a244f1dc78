"""The patches of faust-streaming internals, one module each.

Every module here names the upstream code it copies, replaces or relies on in
``UPSTREAM``, and installs itself with ``install`` (once per process, refused on a
faust-streaming other than the pinned one). ``stream.shell.faust.install`` installs them
all from the settings.
"""
