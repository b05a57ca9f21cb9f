/* The Russian file picker: <div class="file-picker"> holds a visually hidden file input, a
   label styled as the button «Выбрать файлы» and a line for the chosen names. The browser's
   own control says «Choose Files / No file chosen» wherever its language is not Russian. */
document.addEventListener("change", function (event) {
  var input = event.target;
  if (!input.classList || !input.classList.contains("file-picker-input")) {
    return;
  }
  var line = input.parentNode.querySelector(".file-picker-names");
  var names = Array.prototype.map.call(input.files, function (file) { return file.name; });
  line.textContent = names.length ? "Выбрано: " + names.join(", ") : "Файлы не выбраны";
});
