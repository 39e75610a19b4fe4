"""netdoctor: diagnose and repair the node networks of Kubernetes and Docker clusters."""

__version__ = "0.1.0"
