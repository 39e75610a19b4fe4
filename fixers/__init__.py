"""Fixers: plans of steps that print or apply the remedy for a finding."""
