"""Request and response models of the API, the contract with the frontend (shown in
OpenAPI): one module per route module of `routes`, and `shared` for what several use."""
