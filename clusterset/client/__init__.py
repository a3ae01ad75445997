"""Async Kubernetes REST client on raw dicts: kubeconfig, exec credentials, retries, typed errors."""
