/** Loaded before every test file (bunfig.toml): stops the shared PostgreSQL after the last file. */
import { afterAll } from "bun:test";
import { stopSharedServices } from "./services.ts";

afterAll(stopSharedServices);
