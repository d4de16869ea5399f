"""The `mgrecs` operator CLI, an application: it calls the libraries and the services' public
modules (`mgrecs.ingest.public`, `mgrecs.batch.public`), never their internals; and the embedded
stack used by the demo and the tests."""
