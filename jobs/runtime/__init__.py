"""What every job's driver runs on: the entry point (``driver``), the job kinds' one door to the
registry and the artifact root (``context``), and the warm driver host that forks drivers with
the heavy libraries already imported (``warm``)."""
