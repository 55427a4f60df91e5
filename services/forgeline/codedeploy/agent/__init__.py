"""Forgeline's CodeDeploy agent: runs deployments on a host, as AWS's agent does.

It speaks the CodeDeploy command service protocol (`CodeDeployCommandService_v20141006`)
to a Forgeline server, or runs a bundle with no server at all (`forgeline deploy-local`).

- events.py            lifecycle event names and which revision each one runs from
- results.py           a command's outcome: AWS's error codes and the 2 KiB log tail
- appspec.py           appspec.yml → AppSpec (pure)
- bundle.py            safe extraction of zip/tar/tgz bundles, finding the appspec
- pkcs7.py, spec.py    the deployment specification envelope and its contents
- layout.py            where things live under the agent's root directory
- install.py           the Install step: copy files, file-exists behaviour, permissions
- hooks.py             running an event's scripts with AWS's environment and error codes
- command_executor.py  one function per command name
- client.py            the signed JSON 1.1 client of the command service
- poller.py            the poll → spec → ack → execute → complete loop
- config.py            the agent's YAML configuration
- registration.py      registering this host as an on-premises instance
- deploy_local.py      running a bundle here without a server
"""
