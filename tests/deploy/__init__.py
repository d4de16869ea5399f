"""Static checks of deploy/: compose, Dockerfiles, Kubernetes, healthcheck and monitoring."""
