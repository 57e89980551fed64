"""leukobench: a benchmark of classifiers of acute lymphoblastic leukemia cells."""
__version__ = "0.1.0"
