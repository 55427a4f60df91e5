"""CodeBuild test and code coverage reports: file parsers and build-time ingestion."""
