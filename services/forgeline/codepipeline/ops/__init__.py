"""CodePipeline's API handlers, one mixin per topic, composed in codepipeline/api.py."""
