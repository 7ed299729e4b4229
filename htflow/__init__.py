"""htflow: closed-loop composition screening on jobflow, atomate2 and maggma."""
__version__ = "0.1.0"
