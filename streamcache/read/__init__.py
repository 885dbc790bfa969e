"""The read side: what the reader Lambda and the library use to read the cache."""
