"""Device profiles: the schema of a model's register or payload map (``schema``), the loader
of the shipped profiles (``registry``), the pure register codec (``codec``) and the MQTT
payload codec (``payload``)."""
