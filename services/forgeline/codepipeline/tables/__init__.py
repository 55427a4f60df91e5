"""CodePipeline's tables: pipelines with their versions, and executions."""
