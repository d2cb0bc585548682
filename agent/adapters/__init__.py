"""The only modules that do I/O, each behind one port."""
