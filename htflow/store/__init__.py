"""Stores: where candidates, results, campaigns and jobflow outputs live."""
