"""CodeDeploy's tables: one module per resource."""
