import "./style.css";
import { App } from "./ui";

const root = document.getElementById("root");
if (root) new App(root).start();
