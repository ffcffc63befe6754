DROP TABLE instance_setup;
