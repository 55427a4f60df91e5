"""The CloudWatch operations Forgeline implements, one mixin per topic."""
