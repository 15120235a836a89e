import "./style.css";
import { loadPolicy } from "./policy";
import { App } from "./ui";

// The server's limits, asked for once per page; the defaults stand until they arrive.
void loadPolicy();
const root = document.getElementById("root");
if (root) new App(root).start();
