"""Parsers of raw command output and captured files, producing snapshot parts."""
