"""Running compiled code: executables bound to a Session's feeds and variables."""
