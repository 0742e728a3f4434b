"""Language models over HTTP: the streaming client, discovery, reasoning separation, token counting."""
