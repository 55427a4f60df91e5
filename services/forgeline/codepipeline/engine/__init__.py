"""CodePipeline's execution engine: the rules of one pipeline execution as pure functions.

`machine.advance(state, event, now)` moves one execution (`state.ExecutionState`) on an
event (`events`) and says what the driver must do (`effects`); `plan` turns a pipeline
declaration into what the engine runs, `variables` resolves ``#{namespace.Variable}``
references, `lanes` decides which execution may enter which stage under the pipeline's
execution mode, and `fake` is an in-memory world that drives it all for tests and examples.
Nothing here does I/O or reads a clock.
"""
