"""The MCP server (the only package that imports the MCP SDK).

- :mod:`tokenward.mcp.sessions`: signed, stateless per-user session tokens;
- :mod:`tokenward.mcp.server`: the catalog's tools as an MCP server, run by the tool runner;
- :mod:`tokenward.mcp.http`: the ``/mcp`` Streamable HTTP endpoint;
- :mod:`tokenward.mcp.stdio`: the same server over stdio (``tokenward mcp``).
"""
