"""rsmt_studio.service: transitions over HTTP (`rsmt-studio serve`) and in bulk (`rsmt-studio batch`)."""
