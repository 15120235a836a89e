import { defineConfig } from "vitest/config";

// For `npm run dev`, proxy the API (HTTP + WebSocket) to a running Hearth server.
const target = process.env.HEARTH_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    assetsDir: "assets",
  },
  server: {
    proxy: {
      "/api": { target, ws: true, changeOrigin: true },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
