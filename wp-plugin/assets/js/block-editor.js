/**
 * Editor side of the "KYC verification" block (no build step): a placeholder with a user-type
 * picker. The front end is rendered by PHP (Frontend::render_block).
 */
( function ( wp ) {
	'use strict';
	var el = wp.element.createElement;
	var __ = wp.i18n.__;
	var types = [
		{ value: '', label: __( 'Default (from the settings)', 'kyc-bridge' ) },
		{ value: 'contributor', label: __( 'Contributor', 'kyc-bridge' ) },
		{ value: 'intern', label: __( 'Intern', 'kyc-bridge' ) },
		{ value: 'investor', label: __( 'Investor', 'kyc-bridge' ) },
		{ value: 'customer', label: __( 'Customer', 'kyc-bridge' ) },
		{ value: 'cooperative_member', label: __( 'Cooperative member', 'kyc-bridge' ) },
		{ value: 'vendor', label: __( 'Vendor', 'kyc-bridge' ) }
	];

	wp.blocks.registerBlockType( 'kyc-bridge/verify', {
		edit: function ( props ) {
			var blockProps = wp.blockEditor.useBlockProps();
			var picker = el( wp.components.SelectControl, {
				label: __( 'User type', 'kyc-bridge' ),
				value: props.attributes.userType,
				options: types,
				onChange: function ( value ) {
					props.setAttributes( { userType: value } );
				}
			} );
			return el(
				'div',
				blockProps,
				el( wp.blockEditor.InspectorControls, null, el( wp.components.PanelBody, { title: __( 'Verification', 'kyc-bridge' ) }, picker ) ),
				el( wp.components.Placeholder, {
					icon: 'id-alt',
					label: __( 'KYC verification', 'kyc-bridge' ),
					instructions: __( 'Visitors see their verification state and a Verify identity button here.', 'kyc-bridge' )
				}, picker )
			);
		},
		save: function () {
			return null;
		}
	} );
}( window.wp ) );
