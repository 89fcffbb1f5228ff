; Inno Setup 6.3+ script: a per-user installer for the one-folder app in dist\slmdesk\.
; Build the app first (packaging\build.sh in Git Bash), then:
;   iscc packaging\windows\slmdesk.iss          -> dist\slmdesk-<version>-windows-x86_64-setup.exe
;   iscc /DVariant=-cuda packaging\windows\slmdesk.iss   (a GPU build: ...-x86_64-cuda-setup.exe)
; No administrator rights: installs to %LOCALAPPDATA%\Programs\slmdesk, adds a Start menu entry
; and an uninstaller (Settings > Apps). The user's chats, models and settings live elsewhere
; (%LOCALAPPDATA%\slmdesk, from platformdirs) and are kept on uninstall.
; Not built or run in slmdesk's CI; see packaging/README.md for signing.

#define AppName "slmdesk"
#define AppExe "slmdesk.exe"
#define BundleDir "..\..\dist\slmdesk"
; The version comes from the version resource PyInstaller wrote into slmdesk.exe
; (packaging/appmeta.py, from slmdesk.__version__), so the two cannot disagree.
#ifndef AppVersion
  #define AppVersion GetStringFileInfo(AddBackslash(SourcePath) + BundleDir + "\" + AppExe, "ProductVersion")
#endif
#if AppVersion == ""
  #error "dist\slmdesk\slmdesk.exe is missing or has no version resource: build the app first"
#endif
#ifndef Variant
  #define Variant ""
#endif

[Setup]
; AppId identifies the installation for upgrades and uninstall: never change it.
AppId={{0359AE7D-3EB0-485C-B608-797E29811500}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppName}
VersionInfoVersion={#AppVersion}
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
SetupIconFile=..\..\resources\icons\slmdesk.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
OutputDir=..\..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-windows-x86_64{#Variant}-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; Replacing a running slmdesk.exe would fail half-way: ask the user to close it.
CloseApplications=yes
RestartApplications=no

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; An upgrade replaces the bundle wholesale: files a newer build no longer ships must not stay.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
